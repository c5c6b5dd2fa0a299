import { describeSeeds } from './seed_suite';

describeSeeds(3, 1, 1200);

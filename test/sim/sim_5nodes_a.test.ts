import { describeSeeds } from './seed_suite';

describeSeeds(5, 1, 1000);

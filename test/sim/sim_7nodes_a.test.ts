import { describeSeeds } from './seed_suite';

describeSeeds(7, 1, 800);

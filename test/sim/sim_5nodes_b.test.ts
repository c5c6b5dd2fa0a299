import { describeSeeds } from './seed_suite';

describeSeeds(5, 1001, 2000);

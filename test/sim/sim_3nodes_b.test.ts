import { describeSeeds } from './seed_suite';

describeSeeds(3, 1201, 2400);

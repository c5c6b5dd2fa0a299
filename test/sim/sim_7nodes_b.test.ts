import { describeSeeds } from './seed_suite';

describeSeeds(7, 801, 1600);

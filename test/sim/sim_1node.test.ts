import { describeSeeds } from './seed_suite';

// Clusters founded with one voter, as `pgraft init` starts them, that grow and shrink again.
describeSeeds(1, 1, 3000);

#!/usr/bin/env node
import { main } from '../dist/cli/watch.js';
import { runMain } from '../dist/cli/io.js';
runMain(main);

#!/usr/bin/env node
import { main } from '../dist/cli/pkg.js';
import { runMain } from '../dist/cli/io.js';
runMain(main);

#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1 --optimize-for-size
import '../dist/bin/overlay-pkgd.mjs';

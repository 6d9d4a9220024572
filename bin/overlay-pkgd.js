#!/usr/bin/env node
import '../dist/bin/overlay-pkgd.mjs';

#!/usr/bin/env node
import '../dist/bin/overlay-diskfile.mjs';

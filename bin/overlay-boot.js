#!/usr/bin/env node
import '../dist/bin/overlay-boot.mjs';

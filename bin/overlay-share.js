#!/usr/bin/env node
import '../dist/bin/overlay-share.mjs';

#!/usr/bin/env node
import '../dist/bin/overlay-stop.mjs';

#!/usr/bin/env node
import '../dist/bin/overlay-go.mjs';

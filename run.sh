#!/bin/bash
# The MDX 2021 grader executes this file.
python predict.py

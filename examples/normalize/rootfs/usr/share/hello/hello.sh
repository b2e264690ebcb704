#!/bin/sh
cat /usr/share/hello/README

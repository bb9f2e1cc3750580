#!/bin/sh
# Fails when a benchmark left shared-memory segments or message queues of
# namespace $1 behind, and removes them.
set -u
ns=$1
left=$(ls -d /dev/shm/shmq."$ns".* /dev/shm/shmq-bench."$ns".* /dev/mqueue/shmq-bench."$ns".* 2>/dev/null)
[ -z "$left" ] && exit 0
echo "left behind:" $left
rm -f $left
exit 1

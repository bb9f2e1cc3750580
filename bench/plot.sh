#!/bin/sh
# Plots the one-way latency percentiles of `shmq-bench compare` (shmq against
# each baseline, log scales) from the data it wrote with --dat PREFIX:
#
#   shmq-bench compare --dat /tmp/lat | tee /tmp/compare.txt
#   bench/plot.sh /tmp/lat docs/img/latency.png
#
# Two panels: busy-spin and blocking (futex). Needs gnuplot (gnuplot-nox).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 DATA_PREFIX OUT.png" >&2; exit 2; }
prefix=$1
out=$2
for wait in spin block; do
  [ -f "$prefix-$wait.dat" ] || { echo "$0: no $prefix-$wait.dat (run compare --dat $prefix)" >&2; exit 1; }
done

gnuplot <<GNUPLOT
set terminal pngcairo size 1400,560 enhanced font "sans,10"
set output "$out"
set multiplot layout 1,2 title "One-way latency by percentile, 64 B (shmq-bench compare)"
set logscale xy
set xrange [1.5:150000]
set grid xtics ytics mytics
set xlabel "percentile"
set ylabel "one-way latency (ns)"
set key top left
set style data linespoints
do for [wait in "spin block"] {
  file = "$prefix-" . wait . ".dat"
  set title (wait eq "spin" ? "busy-spin" : "blocking (futex)")
  stats file skip 1 nooutput
  plot for [col=3:STATS_columns] file using 2:col:xtic(1) title columnheader(col) \
       lw (col == 3 ? 3 : 1.5) pt 7 ps 0.6
}
unset multiplot
GNUPLOT
echo "wrote $out"

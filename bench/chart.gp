# The chart of `make bench`: gnuplot -e 'datafile="..."; outfile="..."' bench/chart.gp
# datafile: one row a client, "label" then its rate relative to the raw C loop for the small
# GET, the paged walk and the 3 MiB GET ("-" where it did not run).
set terminal pngcairo size 1100,620 font "sans,10"
set output outfile
set title "make bench: rate relative to the raw C libcurl loop (median of per-round ratios; higher is faster)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile missing "-"
set logscale y
set yrange [0.001:4]
set ytics ("0.001" 0.001, "0.003" 0.003, "0.01" 0.01, "0.03" 0.03, "0.1" 0.1, "0.3" 0.3, "0.5" 0.5, "1" 1, "2" 2)
set grid ytics
set xtics rotate by -30 left
set key top right
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb "black"
set bmargin 7
plot datafile using 2:xtic(1) title "small GET (calls/s)", \
     '' using 3 title "paged walk (items/s)", \
     '' using 4 title "3 MiB GET (calls/s)"

# tally.sh — sourced by the scripts that run other test scripts and add up
# their results (run_all.sh, train_features.sh).
#
# tally STATUS < OUTPUT: adds the last "N passed, N failed" line of a
# script's OUTPUT to $passed and $failed. No such line counts as one
# failure, and so does a non-zero STATUS when the line counts none.
tally() {
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    else
        p=0; f=1
    fi
    if [ "$1" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
}

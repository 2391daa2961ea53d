# Shell functions for the guest scripts of the VM tests (sourced, cwd = the checkout).

# wait_for TEXT LOG PID: until LOG says TEXT (or PID died), at most 60 s.
wait_for() {
	i=0
	while [ $i -lt 600 ]; do
		grep -q "$1" "$2" && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# wait_attached LOG PID: until pageref record says it attached (or died).
wait_attached() { wait_for "attached" "$1" "$2"; }

package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat: USER_HZ,
// sysconf(_SC_CLK_TCK), which Linux fixes at 100 on x86 and arm64.
const clockTick = 10 * time.Millisecond

// ErrStat: a /proc/<pid>/stat or /proc/stat line could not be parsed.
var ErrStat = errors.New("malformed /proc stat line")

// ProcessCPU returns the CPU time (user + system, all threads) process pid
// has used so far, from /proc/<pid>/stat, in steps of 10ms.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("bench: process cpu: %w", err)
	}
	d, err := parseStat(string(b))
	if err != nil {
		return 0, fmt.Errorf("bench: process cpu of %d: %w", pid, err)
	}
	return d, nil
}

// parseStat returns utime + stime (fields 14 and 15, proc(5)) of a
// /proc/<pid>/stat line. The command name, field 2, is in parentheses and
// may itself hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseStat(line string) (time.Duration, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, ErrStat
	}
	// After ")": field 3 (state) is at index 0, so field n is at n-3.
	f := strings.Fields(line[i+1:])
	if len(f) < 13 {
		return 0, ErrStat
	}
	utime, err1 := strconv.ParseUint(f[14-3], 10, 63)
	stime, err2 := strconv.ParseUint(f[15-3], 10, 63)
	if err1 != nil || err2 != nil {
		return 0, ErrStat
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// MachineCPU returns the CPU time all CPUs of the machine have spent busy
// (user, nice, system, irq, softirq) and idle (idle, iowait) since boot,
// from the first line of /proc/stat. Time stolen by the hypervisor is in
// neither.
func MachineCPU() (busy, idle time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("bench: machine cpu: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	busy, idle, err = parseMachineStat(line)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: machine cpu: %w", err)
	}
	return busy, idle, nil
}

// parseMachineStat parses the "cpu" line of /proc/stat: user, nice,
// system, idle, iowait, irq, softirq, steal, … in clock ticks (proc(5)).
func parseMachineStat(line string) (busy, idle time.Duration, err error) {
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, ErrStat
	}
	var v [7]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 63); err != nil {
			return 0, 0, ErrStat
		}
	}
	user, nice, system, idl, iowait, irq, softirq := v[0], v[1], v[2], v[3], v[4], v[5], v[6]
	return time.Duration(user+nice+system+irq+softirq) * clockTick, time.Duration(idl+iowait) * clockTick, nil
}

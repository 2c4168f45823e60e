package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's utime and stime. It
// is 100 on every Linux architecture Go supports (the kernel's CONFIG_HZ
// may differ, USER_HZ does not); the standard library cannot call
// sysconf(_SC_CLK_TCK) to check.
const clockTicks = 100

// procReader reads a process's CPU time and memory from Linux's /proc.
// A nil *procReader samples nothing.
type procReader struct {
	pid string // a number, or "self"
}

// procSample is one reading.
type procSample struct {
	at  time.Time
	cpu time.Duration // user + system, this process only (not waited-for children)
}

func (p *procReader) available() bool {
	if p == nil {
		return false
	}
	_, err := p.cpu()
	return err == nil
}

func (p *procReader) sample() (procSample, error) {
	if p == nil {
		return procSample{}, errors.New("no process")
	}
	cpu, err := p.cpu()
	return procSample{at: time.Now(), cpu: cpu}, err
}

func (p *procReader) cpu() (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + p.pid + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data))
}

// memory returns VmHWM (peak resident set size since the process started)
// and VmRSS (resident set size now), in bytes.
func (p *procReader) memory() (hwm, rss int64, err error) {
	data, err := os.ReadFile("/proc/" + p.pid + "/status")
	if err != nil {
		return 0, 0, err
	}
	if hwm, err = parseStatusKB(string(data), "VmHWM"); err != nil {
		return 0, 0, err
	}
	if rss, err = parseStatusKB(string(data), "VmRSS"); err != nil {
		return 0, 0, err
	}
	return hwm, rss, nil
}

// parseStatCPU returns utime+stime from the text of /proc/PID/stat. The
// second field, the command name in parentheses, may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	// After ')': field 3 (state) is f[0], so field n is f[n-3].
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseInt(f[14-3], 10, 64)
	stime, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// parseStatusKB returns a "Key:   123 kB" line of /proc/PID/status in bytes.
func parseStatusKB(status, key string) (int64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: unexpected %s line %q", key, strings.TrimSpace(line))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: %s: %w", key, err)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("/proc status: no %s line", key)
}

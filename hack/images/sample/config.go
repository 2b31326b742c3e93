package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const defaultPort = 8080

// config is what the environment asks of the process.
type config struct {
	name        string
	version     string
	ports       []int // $PORT first, then $LISTEN_PORTS, without duplicates
	readyAfter  time.Duration
	crashAfter  time.Duration // 0: never
	exitAfter   time.Duration // 0: never; a Job's task: exit with exitCode after this long
	exitCode    int
	exitMessage string
	failAtStart bool
	configDirs  []string
}

func loadConfig(getenv func(string) string, hostname string) (config, error) {
	cfg := config{name: getenv("SERVICE_NAME"), version: getenv("VERSION")}
	if cfg.name == "" {
		cfg.name = hostname
	}
	var err error
	if cfg.ports, err = parsePorts(getenv("PORT"), getenv("LISTEN_PORTS")); err != nil {
		return cfg, err
	}
	if cfg.readyAfter, err = parseSeconds("READY_AFTER_SECONDS", getenv("READY_AFTER_SECONDS")); err != nil {
		return cfg, err
	}
	if cfg.crashAfter, err = parseSeconds("CRASH_AFTER_SECONDS", getenv("CRASH_AFTER_SECONDS")); err != nil {
		return cfg, err
	}
	if cfg.exitAfter, err = parseSeconds("EXIT_AFTER_SECONDS", getenv("EXIT_AFTER_SECONDS")); err != nil {
		return cfg, err
	}
	if value := getenv("EXIT_CODE"); value != "" {
		if cfg.exitCode, err = strconv.Atoi(value); err != nil || cfg.exitCode < 0 || cfg.exitCode > 255 {
			return cfg, fmt.Errorf("EXIT_CODE=%q: want a number from 0 to 255", value)
		}
	}
	cfg.exitMessage = getenv("EXIT_MESSAGE")
	if cfg.exitMessage == "" && cfg.exitAfter > 0 {
		cfg.exitMessage = fmt.Sprintf("EXIT_AFTER_SECONDS: done after %s as asked", cfg.exitAfter)
	}
	if value := getenv("FAIL_AT_START"); value != "" {
		if cfg.failAtStart, err = strconv.ParseBool(value); err != nil {
			return cfg, fmt.Errorf("FAIL_AT_START=%q: want 1, true, 0 or false", value)
		}
	}
	cfg.configDirs = filepath.SplitList(getenv("CONFIG_DIR"))
	return cfg, nil
}

func parsePorts(port, listenPorts string) ([]int, error) {
	if port == "" {
		port = strconv.Itoa(defaultPort)
	}
	words := append([]string{port}, strings.Split(listenPorts, ",")...)
	var ports []int
	seen := map[int]bool{}
	for _, word := range words {
		word = strings.TrimSpace(word)
		if word == "" {
			continue
		}
		n, err := strconv.Atoi(word)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q (PORT or LISTEN_PORTS): want a number from 1 to 65535", word)
		}
		if !seen[n] {
			seen[n] = true
			ports = append(ports, n)
		}
	}
	return ports, nil
}

func parseSeconds(name, value string) (time.Duration, error) {
	if value == "" {
		return 0, nil
	}
	seconds, err := strconv.ParseFloat(value, 64)
	if err != nil || seconds < 0 {
		return 0, fmt.Errorf("%s=%q: want a number of seconds, 0 or more", name, value)
	}
	return time.Duration(seconds * float64(time.Second)), nil
}

package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	maxConfigFileBytes = 64 << 10
	maxConfigFiles     = 200
)

// readConfigDirs maps the path of every file under dirs to its content, so tests see config reach the process.
func readConfigDirs(dirs []string) map[string]string {
	files := map[string]string{}
	for _, dir := range dirs {
		readConfigDir(dir, files)
	}
	return files
}

// readConfigDir walks the directory a symlink points to too (a mounted volume's path may be one), and skips the
// kubelet's own `..data` and `..<timestamp>` entries, whose files the top-level symlinks already show.
func readConfigDir(dir string, files map[string]string) {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return
	}
	_ = filepath.WalkDir(resolved, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if strings.HasPrefix(entry.Name(), "..") {
			if entry.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if entry.IsDir() {
			return nil
		}
		if len(files) >= maxConfigFiles {
			return fs.SkipAll
		}
		relative, _ := filepath.Rel(resolved, path)
		if content, ok := readSmallFile(path); ok {
			files[filepath.Join(dir, relative)] = content
		}
		return nil
	})
}

// readSmallFile follows symlinks; it says so instead of returning a large file, and skips non-regular files.
func readSmallFile(path string) (string, bool) {
	stat, err := os.Stat(path)
	if err != nil || !stat.Mode().IsRegular() {
		return "", false
	}
	if stat.Size() > maxConfigFileBytes {
		return fmt.Sprintf("(%d bytes: larger than %d, not shown)", stat.Size(), maxConfigFileBytes), true
	}
	content, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err), true
	}
	return string(content), true
}

// Command render writes the files the smtp_exporter mixin renders
// (make mixin), or with -check reports those that differ from what is
// committed (make mixin-check).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/smtp-exporter/smtp_exporter/mixin"
)

func main() {
	root := flag.String("root", ".", "the repository's root")
	check := flag.Bool("check", false, "write nothing; exit 1 when a rendered file differs from the one in the tree")
	flag.Parse()
	files, err := mixin.Render(filepath.Join(*root, "mixin"), "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "render the mixin:", err)
		os.Exit(2)
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	stale := 0
	for _, name := range names {
		path := filepath.Join(*root, name)
		if *check {
			have, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(have, files[name]) {
				fmt.Fprintf(os.Stderr, "%s is not what mixin/ renders: run make mixin\n", name)
				stale++
			}
			continue
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("wrote", name)
	}
	if stale > 0 {
		os.Exit(1)
	}
}

package config

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADME_Defaults checks the configuration reference against the code:
// every key of a module and of a target has a row, and each row's default
// is the value loading fills in when the file leaves the key out.
func TestREADME_Defaults(t *testing.T) {
	const doc = `modules:
  m:
    smtp:
      auth: {username: u, password: p}
targets:
  - {name: t, address: "mx.example.net:25", module: m}
`
	// Keys the document above sets, so their rows' defaults do not apply.
	written := map[string]bool{"smtp.auth.username": true, "smtp.auth.password": true, "name": true, "address": true, "module": true}
	cfg, err := Parse([]byte(doc), "x.yml")
	if err != nil {
		t.Fatal(err)
	}
	m, target := cfg.Modules["m"], cfg.Targets[0]
	// Defaults the table describes in words, each with its check.
	described := map[string]func(v reflect.Value) bool{
		"Module keys smtp.ehlo":                reflect.Value.IsZero, // chosen at each run, from the host and the connection
		"Module keys smtp.tls_config":          reflect.Value.IsZero, // Go's TLS defaults apply
		"Module keys delivery.imap.tls_config": reflect.Value.IsZero,
		"Target keys timeout":                  func(v reflect.Value) bool { return v.Interface() == m.Timeout },
		// The module above has no delivery.imap.auth, whose mechanism
		// defaults as smtp.auth's does.
		"Module keys delivery.imap.auth.mechanism": reflect.Value.IsZero,
	}

	tables := readmeDefaults(t, "../../README.md")
	for _, section := range []struct {
		name  string
		value reflect.Value
	}{{"Module keys", reflect.ValueOf(m).Elem()}, {"Target keys", reflect.ValueOf(target).Elem()}} {
		rows := tables[section.name]
		if rows == nil {
			t.Fatalf("README.md has no %q table", section.name)
		}
		for _, key := range yamlKeys(section.value.Type(), "") {
			def, ok := rows[key]
			if !ok {
				t.Errorf("README.md %s: no row for %s", section.name, key)
				continue
			}
			delete(rows, key)
			if written[key] {
				continue
			}
			v := valueAt(section.value, key)
			if check, ok := described[section.name+" "+key]; ok {
				if !check(v) {
					t.Errorf("README.md %s: %s defaults to %q, but loading gives %v", section.name, key, def, v)
				}
				continue
			}
			if !defaultIs(def, v) {
				t.Errorf("README.md %s: %s defaults to %s, but loading gives %v", section.name, key, def, v)
			}
		}
		for key := range rows {
			t.Errorf("README.md %s: row for %s, which is no key", section.name, key)
		}
	}
}

// defaultIs reports whether a README default cell ("–" for none, or a
// value in backquotes) says v.
func defaultIs(cell string, v reflect.Value) bool {
	if cell == "–" {
		return v.IsZero()
	}
	want, ok := strings.CutPrefix(cell, "`")
	want, ok2 := strings.CutSuffix(want, "`")
	if !ok || !ok2 {
		return false
	}
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if d, isDuration := v.Interface().(time.Duration); isDuration {
		w, err := time.ParseDuration(want)
		return err == nil && w == d
	}
	return fmt.Sprint(v.Interface()) == want
}

// readmeDefaults reads the default column of README.md's key tables, by
// heading ("Module keys") and key. A row may name several keys
// ("`smtp.auth.password` / `password_file`"): the later ones are relative
// to the first's parent.
func readmeDefaults(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	code := regexp.MustCompile("`([^`]+)`")
	tables := map[string]map[string]string{}
	var rows map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			rows = nil
			if name, ok := strings.CutPrefix(line, "### "); ok && strings.HasSuffix(name, " keys") {
				rows = map[string]string{}
				tables[name] = rows
			}
			continue
		}
		cells := strings.Split(line, " | ")
		if rows == nil || !strings.HasPrefix(line, "| `") || len(cells) < 3 {
			continue
		}
		keys := code.FindAllStringSubmatch(cells[0], -1)
		parent := ""
		if i := strings.LastIndex(keys[0][1], "."); i >= 0 {
			parent = keys[0][1][:i+1]
		}
		for i, k := range keys {
			key := k[1]
			if i > 0 {
				key = parent + key
			}
			rows[key] = cells[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return tables
}

// yamlKeys lists the dotted keys of a configuration type down to the
// settings: structs are followed, except those that decode themselves
// (tls_config, a setting of its own).
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			// Set by the program, never read from a file.
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !decodesItself(ft) {
			keys = append(keys, yamlKeys(ft, prefix+name+".")...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	return keys
}

// valueAt is the field at a dotted key, or the zero value under a nil
// pointer (smtp.auth without auth).
func valueAt(v reflect.Value, key string) reflect.Value {
	for _, name := range strings.Split(key, ".") {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v = reflect.Zero(v.Type().Elem())
			} else {
				v = v.Elem()
			}
		}
		t := v.Type()
		for i := range t.NumField() {
			if n, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); n == name {
				v = v.Field(i)
				break
			}
		}
	}
	return v
}

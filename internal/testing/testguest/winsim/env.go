package winsim

import (
	"sort"
	"strings"
)

type envVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// envBlock is a process environment: names are case-insensitive and keep
// the case they were first set with.
type envBlock struct {
	vars []envVar
}

func (e *envBlock) index(name string) int {
	for i, v := range e.vars {
		if strings.EqualFold(v.Name, name) {
			return i
		}
	}
	return -1
}

func (e *envBlock) get(name string) (string, bool) {
	if i := e.index(name); i >= 0 {
		return e.vars[i].Value, true
	}
	return "", false
}

func (e *envBlock) set(name, value string) {
	if i := e.index(name); i >= 0 {
		e.vars[i].Value = value
		return
	}
	e.vars = append(e.vars, envVar{Name: name, Value: value})
}

func (e *envBlock) unset(name string) {
	if i := e.index(name); i >= 0 {
		e.vars = append(e.vars[:i], e.vars[i+1:]...)
	}
}

func (e *envBlock) clone() *envBlock {
	return &envBlock{vars: append([]envVar(nil), e.vars...)}
}

// sorted lists the variables the way cmd's `set` prints them: ordered by
// the upper-cased name, as Windows keeps an environment block.
func (e *envBlock) sorted() []envVar {
	out := append([]envVar(nil), e.vars...)
	sort.SliceStable(out, func(i, j int) bool {
		return strings.ToUpper(out[i].Name) < strings.ToUpper(out[j].Name)
	})
	return out
}

// expandPercent replaces %NAME% with the variable's value; undefined
// variables stay as written, as on cmd's command line (not in a batch
// file). ok is false when a %NAME:...% substitution form is used: the
// stand-in does not implement those.
func (e *envBlock) expandPercent(s string) (out string, ok bool) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		name := s[i+1 : i+1+j]
		b.WriteString(s[:i])
		if v, found := e.get(name); found && name != "" {
			b.WriteString(v)
			s = s[i+2+j:]
			continue
		}
		if strings.Contains(name, ":") {
			if _, found := e.get(name[:strings.IndexByte(name, ':')]); found {
				return "", false
			}
		}
		// Undefined: keep the first % and rescan from the second.
		b.WriteByte('%')
		s = s[i+1:]
	}
}

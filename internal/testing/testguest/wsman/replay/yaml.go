package replay

import (
	"fmt"
	"strconv"
	"strings"
)

// A reader for the captures' small YAML subset: block mappings and
// sequences, plain and quoted scalars on one line.

type yamlLine struct {
	indent int
	text   string
}

func parseYAML(data []byte) (any, error) {
	var lines []yamlLine
	for _, l := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		ind := len(l) - len(strings.TrimLeft(l, " "))
		lines = append(lines, yamlLine{ind, strings.TrimSpace(l)})
	}
	v, rest, err := yamlBlock(lines, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("unexpected YAML line %q", rest[0].text)
	}
	return v, nil
}

func yamlBlock(lines []yamlLine, indent int) (any, []yamlLine, error) {
	if len(lines) == 0 {
		return nil, lines, nil
	}
	if strings.HasPrefix(lines[0].text, "- ") || lines[0].text == "-" {
		var seq []any
		for len(lines) > 0 && lines[0].indent == indent && strings.HasPrefix(lines[0].text, "-") {
			item := strings.TrimSpace(strings.TrimPrefix(lines[0].text, "-"))
			// The item's content is a block at the column after "- ".
			inner := indent + (len(lines[0].text) - len(strings.TrimLeft(strings.TrimPrefix(lines[0].text, "-"), " ")))
			sub := append([]yamlLine{{inner, item}}, lines[1:]...)
			v, rest, err := yamlBlock(sub, inner)
			if err != nil {
				return nil, nil, err
			}
			seq = append(seq, v)
			lines = rest
		}
		return seq, lines, nil
	}
	m := map[string]any{}
	for len(lines) > 0 && lines[0].indent == indent {
		key, val, ok := strings.Cut(lines[0].text, ":")
		if !ok {
			return nil, nil, fmt.Errorf("expected a mapping key in %q", lines[0].text)
		}
		val = strings.TrimSpace(val)
		lines = lines[1:]
		if val == "" {
			if len(lines) > 0 && (lines[0].indent > indent || (lines[0].indent == indent && strings.HasPrefix(lines[0].text, "- "))) {
				v, rest, err := yamlBlock(lines, lines[0].indent)
				if err != nil {
					return nil, nil, err
				}
				m[key] = v
				lines = rest
			} else {
				m[key] = nil
			}
			continue
		}
		s, err := yamlScalar(val)
		if err != nil {
			return nil, nil, err
		}
		m[key] = s
	}
	return m, lines, nil
}

func yamlScalar(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, "'"):
		if !strings.HasSuffix(s, "'") || len(s) < 2 {
			return "", fmt.Errorf("unterminated single-quoted scalar")
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case strings.HasPrefix(s, `"`):
		return strconv.Unquote(s)
	}
	return s, nil
}

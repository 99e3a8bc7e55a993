package winsim

// The syntax tree of the PowerShell subset psParser reads (psparse.go).

type psPos struct {
	offset int
}

type psStmt interface{ pos() psPos }

type psPipeline struct {
	at    psPos
	elems []*psElem
	// redirections at the end of the pipeline
	redirs []psRedir
}

func (s *psPipeline) pos() psPos { return s.at }

type psRedir struct {
	stream string // "1", "2", "*"
	target string // "$null", "&1", or a file (unsupported)
}

type psAssign struct {
	at    psPos
	name  string // variable name, e.g. "x", "env:TEMP"
	value *psPipeline
}

func (s *psAssign) pos() psPos { return s.at }

type psIf struct {
	at      psPos
	conds   []*psPipeline
	bodies  [][]psStmt
	elseDo  []psStmt
	hasElse bool
}

func (s *psIf) pos() psPos { return s.at }

type psExitStmt struct {
	at    psPos
	value *psPipeline // nil: no value
}

func (s *psExitStmt) pos() psPos { return s.at }

type psThrowStmt struct {
	at    psPos
	value *psPipeline
}

func (s *psThrowStmt) pos() psPos { return s.at }

// psElem is one pipeline element: an expression (first element only) or a
// command invocation by name or with the call operator.
type psElem struct {
	at     psPos
	expr   psExpr // expression element
	name   string // command name
	call   psExpr // & <call>
	args   []psArg
	source string
}

type psArg struct {
	param string // parameter name without '-', "" for a positional argument
	value psExpr // nil for a switch parameter
	raw   string // the text as written (native commands get it verbatim)
}

type psExpr interface{}

type (
	psLit     struct{ v any }
	psStrPart struct {
		lit  string
		varN string   // variable reference
		sub  []psStmt // $( ... )
		isV  bool
		isS  bool
	}
	psExpand  struct{ parts []psStrPart }
	psVar     struct{ name string }
	psParen   struct{ pipe *psPipeline }
	psSubExpr struct {
		stmts []psStmt
		array bool
	}
	psMember struct {
		target psExpr
		name   string
		call   bool
		args   []psExpr
	}
	psStatic struct {
		typ  string
		name string
		call bool
		args []psExpr
	}
	psBinary struct {
		op   string
		l, r psExpr
	}
	psUnary struct {
		op string
		x  psExpr
	}
	psArray struct{ items []psExpr }
)

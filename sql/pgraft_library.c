/*
 * The pgraft shared library: nothing but what PostgreSQL needs to load it.
 *
 * pgraft's SQL surface is plain SQL and its work happens in the agent beside PostgreSQL, so
 * the library does nothing. It exists so that `shared_preload_libraries = 'pgraft'`, as the
 * operator documents' production configuration has it, starts PostgreSQL instead of failing
 * with "could not access file". scripts/install-extension builds it for the installed major
 * version; the magic block below is the one PostgreSQL's fmgr.h defines for that version.
 */

#ifndef PG_MAJOR
#error "build with -DPG_MAJOR=<PostgreSQL major version>"
#endif

typedef struct
{
	int			len;			/* sizeof(this struct) */
	int			version;		/* PostgreSQL major version * 100 */
	int			funcmaxargs;	/* FUNC_MAX_ARGS */
	int			indexmaxkeys;	/* INDEX_MAX_KEYS */
	int			namedatalen;	/* NAMEDATALEN */
	int			float8byval;	/* FLOAT8PASSBYVAL */
#if PG_MAJOR >= 15
	char		abi_extra[32];	/* FMGR_ABI_EXTRA */
#endif
} Pg_magic_struct;

static const Pg_magic_struct pgraft_magic = {
	sizeof(Pg_magic_struct), PG_MAJOR * 100, 100, 32, 64, 1,
#if PG_MAJOR >= 15
	"PostgreSQL",
#endif
};

const Pg_magic_struct *Pg_magic_func(void);
void		_PG_init(void);

const Pg_magic_struct *
Pg_magic_func(void)
{
	return &pgraft_magic;
}

void
_PG_init(void)
{
}

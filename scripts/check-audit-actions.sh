#!/usr/bin/env bash
# check-audit-actions.sh - the auditors' action catalogue matches the code
# and the docs (R7.5, R7.1).
#
# An auditor's filter (GET /v1/audit/events?action=, the writer's query
# channel) must name an action of the catalogue in src/audit/query.c
# (audit_action_known).  An action the code records but the catalogue
# lacks cannot be filtered on, so this fails when:
#
#   1. src/ holds an action the catalogue does not list.  An action is any
#      string literal outside comments shaped like "ns.name" (lower case,
#      digits, '_', at least one '.'), except configuration keys (the
#      literals of src/config/config.c), file names (.csv .json .conf .pub
#      .txt .crt .pem) and the few literals listed in NOT_ACTIONS below,
#      each tied to the one file that holds it.  An action built at run
#      time from a format ("key.%s") must be listed in RUNTIME below with
#      what it can produce; an unlisted one fails.
#   2. the catalogue lists an action nothing emits.  An action the code
#      stopped emitting stays filterable (the log keeps five years, R7.3)
#      but must be marked RETIRED("name", "YYYY-MM-DD"); a retired action
#      that is emitted again fails too.
#   3. the catalogue is not sorted (C locale), repeats a name, or holds a
#      name the event schema would refuse.
#   4. the table of docs/audit.md "## Actions" does not list exactly the
#      catalogue (retired ones marked "retired").
#
# What it cannot see: an action put together without a format string
# (strcat, memcpy), or passed in from outside src/.  Such code would also
# fail review; audit_event_new's callers all pass literals today.
#
# Usage: scripts/check-audit-actions.sh [--root DIR] [--catalogue FILE]
#            [--docs FILE] [--list]
#   --root       source tree to check (default: this script's tree)
#   --catalogue  file holding the catalogue (default ROOT/src/audit/query.c)
#   --docs       the audit doc (default ROOT/docs/audit.md)
#   --list       print the catalogue, "name" or "name retired", and exit
# Exits 0 when everything matches, 1 on a mismatch, 2 on a usage error.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
catalogue= docs= list=0
while [ $# -gt 0 ]; do
    case $1 in
    --root) root=${2:?}; shift 2 ;;
    --catalogue) catalogue=${2:?}; shift 2 ;;
    --docs) docs=${2:?}; shift 2 ;;
    --list) list=1; shift ;;
    *) echo "usage: $0 [--root DIR] [--catalogue FILE] [--docs FILE] [--list]" >&2; exit 2 ;;
    esac
done
catalogue=${catalogue:-$root/src/audit/query.c}
docs=${docs:-$root/docs/audit.md}

# Literals shaped like actions that are not actions: "literal file why".
NOT_ACTIONS='
resident.insert     src/store/store_int.h      idempotency op of resident inserts (STORE_IDEM_RES)
vaccination.insert  src/store/store_records.c  idempotency op of vaccination inserts (IDEM_VAC)
vaccination.history src/transfer/message.h     the affair code of transfer messages
r6.3                src/config/config.h        the R6.3 password profile name
'

# Actions built at run time: "file format produces..." (the suffixes must
# appear as literals in that file or in the helper named after it).
RUNTIME='
src/audit/auditd.c key.%s src/crypto/keyring.c key.keystore_open key.keystore_reload key.tenant_create key.rotate key.rewrap key.erase
'

cd "$root"
NOT_ACTIONS=$NOT_ACTIONS RUNTIME=$RUNTIME LIST=$list CATALOGUE=$catalogue DOCS=$docs \
exec perl -e '
use strict;
use warnings;

my $fail = 0;
sub problem { print STDERR "check-audit-actions: $_[0]\n"; $fail = 1; }

sub slurp {
    my ($f) = @_;
    open(my $fh, "<", $f) or die "check-audit-actions: $f: $!\n";
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s;
}

# Comments blanked out (line breaks kept), string literals kept.
sub strip_comments {
    my ($src) = @_;
    $src =~ s{(/\*.*?\*/|//[^\n]*)|("(?:\\.|[^"\\\n])*"|\x27(?:\\.|[^\x27\\\n])*\x27)}
             { defined $1 ? "\n" x ($1 =~ tr/\n//) : $2 }gse;
    return $src;
}

# ---- the catalogue ----------------------------------------------------------
my $cat_src = strip_comments(slurp($ENV{CATALOGUE}));
$cat_src =~ /\bactions\[\]\s*=\s*\{(.*?)\};/s
    or die "check-audit-actions: no \"actions[] = { ... };\" in $ENV{CATALOGUE}\n";
my $block = $1;
my (@cat, %retired);
while ($block =~ /\G\s*(?:RETIRED\(\s*"([^"]*)"\s*,\s*"([^"]*)"\s*\)|"([^"]*)")\s*(?:,|\z)/gc) {
    my $name = defined $1 ? $1 : $3;
    push @cat, $name;
    if (defined $1) {
        $retired{$name} = $2;
        problem("$name: RETIRED needs the day it stopped as \"YYYY-MM-DD\"")
            unless $2 =~ /^\d{4}-\d{2}-\d{2}$/;
    }
}
my $rest = substr($block, pos($block) // 0);
problem("the catalogue has an entry this check cannot read: " . substr($rest, 0, 60))
    if $rest =~ /\S/;
if ($ENV{LIST}) {
    print $_, (exists $retired{$_} ? " retired" : ""), "\n" for @cat;
    exit 0;
}
my %cat;
for my $i (0 .. $#cat) {
    my $n = $cat[$i];
    problem("$n: not a valid action (event schema: [a-z0-9_.]{1,64}, namespace.name)")
        unless $n =~ /^[a-z0-9_]+(?:\.[a-z0-9_]+)+$/ && length($n) <= 64;
    problem("$n: listed twice in the catalogue") if $cat{$n}++;
    problem("$n: the catalogue is not sorted (it comes after $cat[$i - 1])")
        if $i > 0 && ($cat[$i - 1] cmp $n) > 0;
}

# ---- what src/ emits --------------------------------------------------------
my %not;
for (split /\n/, $ENV{NOT_ACTIONS}) {
    my ($lit, $file) = split " ";
    $not{"$lit $file"} = 1 if defined $file;
}
my (%runtime, %emitted);
for (split /\n/, $ENV{RUNTIME}) {
    my ($file, $fmt, $helper, @makes) = split " ";
    next unless defined $fmt;
    $runtime{"$file $fmt"} = 1;
    if (!-f $file || !-f $helper) {
        problem("RUNTIME names $file and $helper; one of them is gone");
        next;
    }
    my $lits = join(" ", map { /"([^"]*)"/g } strip_comments(slurp($file)),
                    strip_comments(slurp($helper)));
    for my $a (@makes) {
        (my $suffix = $a) =~ s/^.*?\.//;
        if (" $lits " =~ / \Q$suffix\E /) {
            $emitted{$a} //= "$file (built from $fmt)";
        } else {
            problem("$a: RUNTIME says $file makes it, but \"$suffix\" is neither there nor in $helper");
        }
    }
}

my @files = sort grep { $_ ne "src/config/config.c" }
            split /\n/, `find src -type f \\( -name "*.c" -o -name "*.h" \\)`;
for my $f (@files) {
    my $src = strip_comments(slurp($f));
    # The catalogue itself lists, it does not emit.
    $src =~ s{(\bactions\[\]\s*=\s*\{)(.*?)(\};)}{$1 . ("\n" x ($2 =~ tr/\n//)) . $3}se
        if $f eq "src/audit/query.c";
    my $line = 1;
    for my $piece (split /("(?:\\.|[^"\\\n])*")/, $src) {
        if ($piece =~ /^"(.*)"$/s) {
            my $lit = $1;
            if ($lit =~ /^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$/) {
                $emitted{$lit} //= "$f:$line"
                    unless $lit =~ /\.(?:csv|json|conf|pub|txt|crt|pem)$/ || $not{"$lit $f"};
            } elsif ($lit =~ /^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*\.%/) {
                problem("$f:$line: builds an action at run time from \"$lit\"; list what it " .
                        "can make in RUNTIME (scripts/check-audit-actions.sh)")
                    unless $runtime{"$f $lit"};
            }
        }
        $line += ($piece =~ tr/\n//);
    }
}

for my $a (sort keys %emitted) {
    if (!exists $cat{$a}) {
        problem("$a ($emitted{$a}) is not in the catalogue (src/audit/query.c): auditors " .
                "cannot filter on it (R7.5); add it, and a row in docs/audit.md \"Actions\"");
    } elsif (exists $retired{$a}) {
        problem("$a ($emitted{$a}) is emitted but marked RETIRED in the catalogue");
    }
}
for my $a (@cat) {
    problem("$a is in the catalogue but nothing in src/ emits it: remove it if it never " .
            "reached a log, else mark it RETIRED(\"$a\", \"YYYY-MM-DD\") (R7.3)")
        unless exists $emitted{$a} || exists $retired{$a};
}

# ---- docs/audit.md "## Actions" ---------------------------------------------
my $doc = slurp($ENV{DOCS});
if ($doc !~ /^## Actions\b[^\n]*\n(.*?)(?=^## |\z)/ms) {
    problem("$ENV{DOCS} has no \"## Actions\" section");
} else {
    my %doc;
    for my $row (grep { /^\|\s*`[a-z]/ } split /\n/, $1) {
        my ($cell) = $row =~ /^\|([^|]*)\|/;
        my $ret = $row =~ /^\|[^|]*\|\s*retired\b/;
        for my $a ($cell =~ /`([a-z0-9_.]+)`/g) {
            problem("$a: in the docs table twice") if $doc{$a}++;
            if (!exists $cat{$a}) {
                problem("$a: in the docs table, not in the catalogue");
            } elsif ($ret != exists $retired{$a}) {
                problem("$a: the docs table and the catalogue disagree on whether it is retired");
            }
        }
    }
    exists $doc{$_} or problem("$_: in the catalogue, missing from the docs table") for @cat;
}

if ($fail) {
    print STDERR "check-audit-actions: FAILED\n";
    exit 1;
}
printf "check-audit-actions: OK (%d actions, %d retired, all emitted ones catalogued)\n",
       scalar(@cat), scalar(keys %retired);
'

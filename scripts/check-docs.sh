#!/usr/bin/env bash
# check-docs.sh - the docs say what the code does, as far as a script can
# tell (issue #6).  It fails when:
#
#   1. routes: a route of src/http/routes.c (method + path) is missing
#      from docs/openapi.yaml "paths", or openapi.yaml documents a
#      method + path that routes.c does not serve.  Path parameters must
#      carry the same names ("/v1/imports/{id}").  And README.md, docs/*.md
#      and man/* name no /v1/ path that routes.c does not serve: a segment
#      in braces, in capitals (JOB_ID) or of digits and hex (131016) stands for
#      a parameter; a path may stop short of a served one (/v1/site).
#   2. controls: a cell of docs/controls.md names a file (src/..., tests/...,
#      scripts/..., bench/..., data/..., man/..., docs/...) that does not
#      exist, a test file ("it_tls.c", "test_tls.c:...") that is in none of
#      tests/*/, or a test function that the file does not define.  In a
#      cell, "file.c:test_a", "test_b" names test_a and test_b of file.c: a
#      bare test_ name belongs to the last file named before it in the same
#      cell.  "file.c:*" needs only the file; "test_x_*" needs one function
#      of that shape.
#   3. links: README.md or docs/*.md has a relative link ([t](path) or
#      [t](path#anchor)) to a file that does not exist, or to an anchor that
#      no heading of the target Markdown file makes (GitHub's rule: lower
#      case, punctuation other than '-' and '_' dropped, spaces to '-', a
#      repeated heading gets -1, -2 ...).  Links inside code are ignored.
#   4. config keys: a key of src/config/config.c's keys[] table is not named
#      in the KEYS section of man/mamorid.conf.5, or a key that section
#      describes (the first bold word after .TP) is not in keys[].  For a
#      number key described alone, a range "(A\(enB" and a "default N" in
#      that line must be keys[]'s min and max and config_defaults' value.
#   5. index: a docs/*.md (or docs/openapi.yaml) is not linked from the
#      table of docs/README.md, or the table links a file that is gone.
#
# What it cannot see: whether prose is true.  It checks names, not meaning;
# the README tour and the man pages' prose are checked by reading them.
#
# Usage: scripts/check-docs.sh [--root DIR]
#   --root  tree to check (default: this script's tree), e.g. a copy with
#           a deliberate break, to see a rule fail
# Exits 0 when everything matches, 1 on a mismatch, 2 on a usage error.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
while [ $# -gt 0 ]; do
    case $1 in
    --root) root=${2:?}; shift 2 ;;
    *) echo "usage: $0 [--root DIR]" >&2; exit 2 ;;
    esac
done

cd "$root"
exec perl -CSD -e '
use strict;
use warnings;
use utf8;

my $fail = 0;
my %count;
sub problem { print STDERR "check-docs: $_[0]\n"; $fail = 1; }

sub slurp {
    my ($f) = @_;
    open(my $fh, "<:encoding(UTF-8)", $f) or die "check-docs: $f: $!\n";
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s;
}

# C comments blanked out (line breaks kept), string literals kept.
sub strip_c_comments {
    my ($src) = @_;
    $src =~ s{(/\*.*?\*/|//[^\n]*)|("(?:\\.|[^"\\\n])*"|\x27(?:\\.|[^\x27\\\n])*\x27)}
             { defined $1 ? "\n" x ($1 =~ tr/\n//) : $2 }gse;
    return $src;
}

# ---- 1. routes.c = openapi.yaml paths ---------------------------------------
{
    my $src = strip_c_comments(slurp("src/http/routes.c"));
    my %served;
    while ($src =~ /\{\s*"(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)"\s*,\s*"(\/[^"]*)"/g) {
        $served{"$1 $2"} = 1;
    }
    problem("src/http/routes.c: no route rows found (has the table changed shape?)")
        unless %served;

    my %documented;
    my ($in_paths, $path) = (0, undef);
    for my $line (split /\n/, slurp("docs/openapi.yaml")) {
        next if $line =~ /^\s*(?:#|$)/;
        if ($line =~ /^(\S[^:]*):/) {
            $in_paths = ($1 eq "paths");
            next;
        }
        next unless $in_paths;
        if ($line =~ /^  (\/\S*):\s*$/) {
            $path = $1;
        } elsif ($line =~ /^  \S/) {
            problem("docs/openapi.yaml: cannot read this line under paths: $line");
        } elsif (defined $path && $line =~ /^    (get|put|post|delete|options|head|patch|trace):/) {
            problem("docs/openapi.yaml: " . uc($1) . " $path documented twice")
                if $documented{uc($1) . " $path"}++;
        }
    }
    for my $r (sort keys %served) {
        problem("$r is served (src/http/routes.c) but missing from docs/openapi.yaml")
            unless $documented{$r};
    }
    for my $r (sort keys %documented) {
        problem("$r is in docs/openapi.yaml but src/http/routes.c does not serve it")
            unless $served{$r};
    }
    $count{routes} = scalar(keys %served);

    # Paths named in prose, each matched segment by segment.
    my @patterns = map { [ split m{/}, (split / /, $_, 2)[1] ] } keys %served;
    my $matches = sub {
        my @seg = split m{/}, $_[0];
        for my $p (@patterns) {
            next if @seg > @$p;
            my $ok = 1;
            for my $i (0 .. $#seg) {
                my ($d, $r) = ($seg[$i], $p->[$i]);
                my $param = $d =~ /^\{|^[A-Z][A-Z0-9_]*$|^[0-9a-f]*[0-9][0-9a-f]*$/;
                $ok = 0, last unless $param ? $r =~ /^\{/ : $d eq $r;
            }
            return 1 if $ok;
        }
        return 0;
    };
    for my $f ("README.md", sort(glob("docs/*.md")), sort(glob("man/*.[0-9]"))) {
        my $lineno = 0;
        for my $line (split /\n/, slurp($f)) {
            $lineno++;
            (my $plain = $line) =~ s/\\-/-/g;             # roff hyphens
            for my $path ($plain =~ m!(/v1/[A-Za-z0-9_{}/.-]*[A-Za-z0-9_}])!g) {
                problem("$f:$lineno names $path, which src/http/routes.c does not serve")
                    unless $matches->($path);
            }
        }
    }
}

# ---- 2. docs/controls.md names files and tests that exist ------------------
{
    my %testfile;      # basename -> path, over tests/*/
    for my $p (split /\n/, `find tests -type f -name "*.c"`) {
        (my $base = $p) =~ s{.*/}{};
        $testfile{$base} = $p;
    }
    my %defs;          # path -> { function => 1 }
    my $defined = sub {
        my ($path) = @_;
        $defs{$path} //= { map { $_ => 1 }
            strip_c_comments(slurp($path)) =~
                /^(?:(?:static|void|int|inline)[ \t]+)*\**[ \t]*(test_\w+)[ \t]*\(/mg };
        return $defs{$path};
    };
    my $fn_ok = sub {
        my ($path, $fn, $where) = @_;
        return if $fn eq "*";
        my $defs = $defined->($path);
        if ($fn =~ /\*/) {
            (my $re = quotemeta $fn) =~ s/\\\*/\\w*/g;
            problem("$where: no function of $path matches $fn")
                unless grep { /^$re$/ } keys %$defs;
        } else {
            problem("$where: $path defines no $fn") unless $defs->{$fn};
        }
    };

    my $n = 0;
    my $lineno = 0;
    for my $line (split /\n/, slurp("docs/controls.md")) {
        $lineno++;
        next unless $line =~ /^\|/;
        for my $cell (split /\|/, $line) {
            my $cur;       # the test file a bare test_ name belongs to
            for my $tok ($cell =~ /`([^`]+)`/g) {
                my $where = "docs/controls.md:$lineno `$tok`";
                if ($tok =~ m{^(?:src|tests|scripts|bench|data|man|docs)/[^\s:]+$}) {
                    $n++;
                    my @hits = $tok =~ /[*?]/ ? glob($tok) : (-e $tok ? ($tok) : ());
                    if (!@hits) {
                        problem("$where: no such file");
                    } elsif ($tok =~ m{^tests/.*\.c$}) {
                        $cur = $tok;
                    }
                } elsif ($tok =~ /^(\w+\.c)(?::(\S+))?$/) {
                    my ($file, $fn) = ($1, $2);
                    $n++;
                    if (!exists $testfile{$file}) {
                        problem("$where: no test file $file under tests/");
                        $cur = undef;
                        next;
                    }
                    $cur = $testfile{$file};
                    $fn_ok->($cur, $fn, $where) if defined $fn;
                } elsif ($tok =~ /^test_[\w*]+$/) {
                    $n++;
                    if (!defined $cur) {
                        problem("$where: a test with no file before it in its cell " .
                                "(write file.c:$tok)");
                    } else {
                        $fn_ok->($cur, $tok, $where);
                    }
                }
            }
        }
    }
    $count{controls} = $n;
}

# ---- 3. relative links of README.md and docs/*.md ---------------------------
my %anchors;           # file -> { slug => 1 }
sub anchors_of {
    my ($f) = @_;
    return $anchors{$f} if $anchors{$f};
    my (%a, %seen);
    my $fence;
    for my $line (split /\n/, slurp($f)) {
        if ($line =~ /^\s*(```+|~~~+)/) {
            if (!defined $fence) { $fence = $1; } elsif (index($line, $fence) >= 0) { $fence = undef; }
            next;
        }
        next if defined $fence;
        next unless $line =~ /^#{1,6}\s+(.*?)\s*#*\s*$/;
        my $h = $1;
        $h =~ s/!?\[([^\]]*)\]\([^)]*\)/$1/g;         # links keep their text
        $h =~ s/<[^>]*>//g;                             # inline HTML
        my $slug = lc $h;
        $slug =~ s/[^\p{L}\p{N}\p{M}\p{Pc} -]//g;       # GitHub keeps letters, digits, _ - and space
        $slug =~ s/ /-/g;
        my $n = $seen{$slug}++;
        $a{$n ? "$slug-$n" : $slug} = 1;
    }
    return $anchors{$f} = \%a;
}

sub norm_path {
    my ($p) = @_;
    my @out;
    for my $part (split m{/}, $p) {
        next if $part eq "" || $part eq ".";
        if ($part eq "..") { return undef unless @out; pop @out; } else { push @out, $part; }
    }
    return join("/", @out);
}

{
    my $n = 0;
    my @mds = ("README.md", sort glob("docs/*.md"));
    for my $md (@mds) {
        (my $dir = $md) =~ s{[^/]*$}{};
        my $text = slurp($md);
        # Code is not prose: blank out fenced blocks and inline code, keeping
        # line breaks so that line numbers stay right.
        $text =~ s{^([ \t]*(```+|~~~+).*?^[ \t]*\2[^\n]*$)}{$1 =~ tr/\n/ /cr}gmse;
        $text =~ s{((`+).+?\2)}{$1 =~ tr/\n/ /cr}gse;
        my $lineno = 1;
        for my $piece (split /(\]\([^)\s]*\))/, $text) {
            if ($piece =~ /^\]\(([^)\s]*)\)$/) {
                my $target = $1;
                next if $target =~ m{^(?:[a-z][a-z0-9+.-]*:|//)}i;   # absolute: not ours
                $n++;
                my ($file, $frag) = $target =~ /^([^#]*)(?:#(.*))?$/;
                my $path = $file eq "" ? $md : norm_path($dir . $file);
                my $where = "$md:$lineno ($target)";
                if (!defined $path || !-e $path) {
                    problem("$where: links to a file that does not exist");
                } elsif (defined $frag && $frag ne "") {
                    if ($path !~ /\.md$/) {
                        problem("$where: an anchor into a file that is not Markdown");
                    } elsif (!anchors_of($path)->{$frag}) {
                        problem("$where: no heading of $path makes the anchor #$frag");
                    }
                }
            }
            $lineno += ($piece =~ tr/\n//);
        }
    }
    $count{links} = $n;
}

# ---- 4. every key of config.c is in mamorid.conf(5), and back ---------------
{
    my $src = strip_c_comments(slurp("src/config/config.c"));
    $src =~ /\bkeys\[\]\s*=\s*\{(.*?)\n\};/s
        or die "check-docs: no \"keys[] = { ... };\" in src/config/config.c\n";
    my $table = $1;
    my %key = map { $_ => 1 } $table =~ /\{\s*"([a-z0-9_.]+)"\s*,/g;
    # Number keys: name -> [member, min, max], and the defaults by member.
    my (%num, %default);
    while ($table =~ /\{\s*"([a-z0-9_.]+)"\s*,\s*V_UINT\s*,\s*U\((\w+)\)\s*,\s*(\d+)\s*,\s*(\d+)\s*\}/g) {
        $num{$1} = [$2, $3, $4];
    }
    $default{$1} = $2 while $src =~ /^\s*cfg->(\w+)\s*=\s*(\d+)\s*;/mg;
    my $man = slurp("man/mamorid.conf.5");
    $man =~ /^\.SH KEYS\s*\n(.*?)(?=^\.SH |\z)/ms
        or die "check-docs: man/mamorid.conf.5 has no .SH KEYS section\n";
    my @lines = split /\n/, $1;
    my (%named, %described);
    for my $i (0 .. $#lines) {
        next unless $lines[$i] =~ /^\.(B|BR|BI|IB|RB)\s+(.*)$/;
        my ($macro, $rest) = ($1, $2);
        my @args = $rest =~ /"((?:[^"\\]|\\.)*)"|(\S+)/g;
        @args = grep { defined } @args;
        # Which arguments are bold: all for .B, alternate ones otherwise.
        my $first_bold = ($macro eq "RB") ? 1 : 0;
        $first_bold = 0 if $macro eq "BI";
        $first_bold = 1 if $macro eq "IB";
        my @bold = $macro eq "B" ? @args
                 : map { $args[$_] } grep { $_ % 2 == $first_bold } 0 .. $#args;
        $named{$_} = 1 for @bold;
        next unless @bold && $i > 0 && $lines[$i - 1] eq ".TP";
        my $k = $bold[0];
        $described{$k} = 1;
        # One key on the line: its range and default must be the code'"'"'s.
        next unless $num{$k} && !grep { $key{$_} } @bold[1 .. $#bold];
        my ($member, $min, $max) = @{ $num{$k} };
        my $text = join("", @args);
        if ($text =~ /(\d+)\\\(en(\d+)/ && ("$1-$2" ne "$min-$max")) {
            problem("man/mamorid.conf.5 gives $k the range $1-$2; src/config/config.c has $min-$max");
        }
        if ($text =~ /default\s+(\d+)/ && defined $default{$member} && $1 != $default{$member}) {
            problem("man/mamorid.conf.5 gives $k the default $1; config_defaults sets $default{$member}");
        }
    }
    for my $k (sort keys %key) {
        problem("config key $k (src/config/config.c) is not in man/mamorid.conf.5 KEYS")
            unless $named{$k};
    }
    for my $k (sort keys %described) {
        problem("man/mamorid.conf.5 KEYS describes $k, which src/config/config.c does not know")
            unless $key{$k};
    }
    $count{keys} = scalar(keys %key);
}

# ---- 5. docs/README.md lists every document --------------------------------
{
    my $idx = slurp("docs/README.md");
    my %listed = map { $_ => 1 } $idx =~ /^\|\s*\[[^\]]*\]\(([^)#\s]+)\)/mg;
    for my $f (sort map { s{^docs/}{}r } glob("docs/*.md"), glob("docs/*.yaml")) {
        next if $f eq "README.md";
        problem("docs/$f is not in the table of docs/README.md") unless $listed{$f};
    }
    for my $f (sort keys %listed) {
        problem("docs/README.md lists $f, which is not in docs/") unless -e "docs/$f";
    }
    $count{docs} = scalar(keys %listed);
}

if ($fail) {
    print STDERR "check-docs: FAILED\n";
    exit 1;
}
printf "check-docs: OK (%d routes documented, %d names in controls.md found, " .
       "%d links resolve, %d config keys in mamorid.conf(5), %d docs indexed)\n",
       @count{qw(routes controls links keys docs)};
'

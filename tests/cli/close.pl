#!/usr/bin/perl
# close.pl — whether two runs agree to a tolerance, for tests/cli/mpi.t.
#   close.pl metrics A.jsonl B.jsonl TOL   the same rows (kind, epoch, step) with each
#                                          number within TOL relative ("seconds" aside)
#   close.pl weights A.safetensors B.safetensors TOL
#                                          the same header, each float within TOL
#                                          (absolute, and relative above 1)
# Prints the largest difference found; exits 1 when it is over TOL or the files differ
# in shape.
use strict;
use warnings;

my ($what, $a, $b, $tol) = @ARGV;
die "usage: close.pl metrics|weights A B TOL\n" unless defined $tol;

sub slurp {
    my ($f) = @_;
    open(my $h, '<:raw', $f) or die "$f: $!\n";
    local $/;
    my $s = <$h>;
    return $s;
}

my $worst = 0;
sub seen {
    my ($x, $y, $scale) = @_;
    my $d = abs($x - $y) / ($scale > 1 ? $scale : 1);
    $worst = $d if $d > $worst;
}

if ($what eq 'metrics') {
    my @ra = grep { /\S/ } split /\n/, slurp($a);
    my @rb = grep { /\S/ } split /\n/, slurp($b);
    if (@ra != @rb) { print "rows: ", scalar(@ra), " against ", scalar(@rb), "\n"; exit 1 }
    for my $i (0 .. $#ra) {
        my %x = $ra[$i] =~ /"(\w+)":("[^"]*"|[^,}]+)/g;
        my %y = $rb[$i] =~ /"(\w+)":("[^"]*"|[^,}]+)/g;
        delete $x{seconds};
        delete $y{seconds};
        if (join(',', sort keys %x) ne join(',', sort keys %y)) { print "row $i: other fields\n"; exit 1 }
        for my $k (keys %x) {
            if ($x{$k} =~ /^"/ || $x{$k} eq 'null') {
                if ($x{$k} ne $y{$k}) { print "row $i: $k $x{$k} against $y{$k}\n"; exit 1 }
                next;
            }
            seen($x{$k}, $y{$k}, abs($y{$k}));
        }
    }
} elsif ($what eq 'weights') {
    my ($sa, $sb) = (slurp($a), slurp($b));
    my ($na, $nb) = (unpack('Q<', $sa), unpack('Q<', $sb));
    if ($na != $nb || substr($sa, 8, $na) ne substr($sb, 8, $nb) || length($sa) != length($sb)) {
        print "the headers differ\n";
        exit 1;
    }
    my @fa = unpack('f<*', substr($sa, 8 + $na));
    my @fb = unpack('f<*', substr($sb, 8 + $nb));
    seen($fa[$_], $fb[$_], abs($fb[$_])) for 0 .. $#fa;
    print scalar(@fa), " floats; ";
} else {
    die "close.pl: metrics or weights, not $what\n";
}
printf "largest difference %.3g\n", $worst;
exit($worst <= $tol ? 0 : 1);

// A custom Sluice build with an out-of-tree module, as an operator would
// write it. cli/outoftree_test.go builds it: it points the replace at the
// repository's absolute path and brings the repository's go.sum.
module example.org/sluice-custom

go 1.26.8

require github.com/sluice-im/sluice v0.0.0

replace github.com/sluice-im/sluice => ../..

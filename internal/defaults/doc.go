// Package defaults fills in the zero fields of the configuration structs of
// flashsale's packages, so that each struct's zero value works.
package defaults

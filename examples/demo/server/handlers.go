// Package server exposes the report over HTTP.
package server

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// ErrNoRegion is returned when a request names no region.
var ErrNoRegion = errors.New("Region is required")

// Handler serves report rows from the database.
type Handler struct {
	DB *sql.DB
}

// ServeHTTP returns the rows of one region as JSON.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	region := r.URL.Query().Get("region")
	if region == "" {
		http.Error(w, ErrNoRegion.Error(), http.StatusBadRequest)
		return
	}
	rows, err := h.DB.Query(fmt.Sprintf("SELECT store, total FROM sales WHERE region = '%s'", region))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer rows.Close()
	totals := map[string]float64{}
	for rows.Next() {
		var store string
		var total float64
		if err := rows.Scan(&store, &total); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		totals[store] += total
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(totals)
}

func ArchiveReports(paths []string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
	}
	return nil
}

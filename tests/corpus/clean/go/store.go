// Package store persists users in a SQL database.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound is returned when no row matches.
var ErrNotFound = errors.New("user not found")

// User is a row of the users table.
type User struct {
	ID      int64
	Email   string
	Created time.Time
}

// Store wraps a database handle.
type Store struct {
	db *sql.DB
}

// New returns a Store using db.
func New(db *sql.DB) *Store {
	return &Store{db: db}
}

// Get loads one user by id.
func (s *Store) Get(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.db.QueryRowContext(ctx, "SELECT id, email, created FROM users WHERE id = $1", id).
		Scan(&u.ID, &u.Email, &u.Created)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %d: %w", id, err)
	}
	return u, nil
}

// FindByEmail looks a user up by email, ignoring case.
func (s *Store) FindByEmail(ctx context.Context, email string) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, email, created FROM users WHERE lower(email) = $1", strings.ToLower(email))
	if err != nil {
		return nil, fmt.Errorf("find %q: %w", email, err)
	}
	defer rows.Close()

	var users []User
	for rows.Next() {
		var u User
		if err := rows.Scan(&u.ID, &u.Email, &u.Created); err != nil {
			return nil, err
		}
		if strings.EqualFold(u.Email, email) {
			users = append(users, u)
		}
	}
	return users, rows.Err()
}

// Import inserts users in one transaction.
func (s *Store) Import(ctx context.Context, users []User) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO users (email, created) VALUES ($1, $2)")
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, u := range users {
		if _, err := stmt.ExecContext(ctx, u.Email, u.Created); err != nil {
			return fmt.Errorf("import %s: %w", u.Email, err)
		}
	}
	return tx.Commit()
}

func (s *Store) close() error {
	return s.db.Close()
}

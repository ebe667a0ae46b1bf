-- A second step: a new column with a default and a renamed column.
ALTER TABLE sx_transfer ADD COLUMN memo TEXT NOT NULL DEFAULT '';
ALTER TABLE sx_account RENAME COLUMN owner TO holder;

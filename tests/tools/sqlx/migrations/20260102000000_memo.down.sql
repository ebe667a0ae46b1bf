ALTER TABLE sx_account RENAME COLUMN holder TO owner;
ALTER TABLE sx_transfer DROP COLUMN memo;

-- Accounts and transfers: identity and serial keys, a foreign key, a check, a unique constraint.
CREATE TABLE sx_account (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner TEXT NOT NULL UNIQUE,
    balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0)
);
CREATE TABLE sx_transfer (
    id SERIAL PRIMARY KEY,
    src BIGINT NOT NULL REFERENCES sx_account (id),
    dst BIGINT NOT NULL REFERENCES sx_account (id),
    amount BIGINT NOT NULL
);
CREATE INDEX sx_transfer_src ON sx_transfer (src);

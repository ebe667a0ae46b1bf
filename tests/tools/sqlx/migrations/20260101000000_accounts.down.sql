DROP TABLE sx_transfer;
DROP TABLE sx_account;

// Customers and orders: increments and bigIncrements keys, a foreign key with ON DELETE CASCADE, a
// unique column, a composite index, defaults, jsonb and timestamps.
exports.up = async (knex) => {
  await knex.schema.createTable("kx_customer", (t) => {
    t.increments("id");
    t.string("email", 200).notNullable().unique();
    t.string("name").notNullable();
    t.timestamps(true, true);
  });
  await knex.schema.createTable("kx_order", (t) => {
    t.bigIncrements("id");
    t.integer("customer_id").notNullable().references("id").inTable("kx_customer").onDelete("CASCADE");
    t.decimal("total", 10, 2).notNullable().defaultTo(0);
    t.jsonb("meta");
    t.boolean("paid").notNullable().defaultTo(false);
    t.index(["customer_id", "paid"]);
  });
};

exports.down = async (knex) => {
  await knex.schema.dropTable("kx_order");
  await knex.schema.dropTable("kx_customer");
};

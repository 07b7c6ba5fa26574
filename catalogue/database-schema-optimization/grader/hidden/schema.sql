-- Cartwheel production schema (excerpt). PostgreSQL 16.
-- Row counts, sizes and write rates are in stats.md.

CREATE TABLE customers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email        text        NOT NULL,
    full_name    text        NOT NULL,
    country_code char(2)     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- Emails are stored as typed at sign-up, so "Ann@Example.com" and "ann@example.com" both occur.
CREATE UNIQUE INDEX customers_email_key ON customers (email);

CREATE TABLE merchants (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL,
    plan       text        NOT NULL DEFAULT 'standard',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id bigint           NOT NULL REFERENCES merchants (id),
    sku         text             NOT NULL,
    title       text             NOT NULL,
    unit_price  double precision NOT NULL,
    active      boolean          NOT NULL DEFAULT true,
    created_at  timestamptz      NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX products_merchant_sku_key ON products (merchant_id, sku);

CREATE TABLE orders (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id      bigint           NOT NULL REFERENCES customers (id),
    -- 'pending' | 'paid' | 'shipped' | 'delivered' | 'cancelled' | 'refunded'
    status           text             NOT NULL,
    total_amount     double precision NOT NULL,
    currency         char(3)          NOT NULL DEFAULT 'GBP',
    shipping_address jsonb            NOT NULL,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX orders_status_idx     ON orders (status);
CREATE INDEX orders_created_at_idx ON orders (created_at);

CREATE TABLE order_items (
    order_id   bigint           NOT NULL REFERENCES orders (id),
    line_no    smallint         NOT NULL,
    product_id bigint           NOT NULL REFERENCES products (id),
    quantity   integer          NOT NULL CHECK (quantity > 0),
    unit_price double precision NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

SELECT commerce.decrement_stock(:product, 1);

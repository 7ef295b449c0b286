from app.auth.tokens import Role


def test_health_checks_the_database(world):
    response = world.client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_enroll_then_earn(world):
    card = world.enroll(email="ada@example.com")
    response = world.purchase(card["barcode"], "12.34")
    assert response.status_code == 201
    assert response.get_json()["points_earned"] == 123
    assert world.balance(card["customer_id"]) == 50 + 123
    assert world.scan(card["barcode"]).get_json()["balance"] == 173
    assert Role.cashier in world.staff

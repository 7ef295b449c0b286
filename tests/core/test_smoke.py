from app.roles import Role


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


def test_the_card_page_shows_the_balance_and_refuses_unknown_links(world):
    card = world.enroll()
    path = card["card_url"].removeprefix("http://card.test")
    page = world.client.get(path)
    assert page.status_code == 200 and "no-referrer" in page.headers["Referrer-Policy"]
    html = page.get_data(as_text=True)
    assert card["member_number"] in html and ">50</strong> points" in html
    missing = world.client.get("/card/not-a-real-token")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"

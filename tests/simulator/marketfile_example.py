"""An example market file, as text."""

EXAMPLE_JSON = """{"users": [{"client_login_id": "PHARMA01", "user_id": "SITE0001", "password": "Secret-Pass1"}],
 "products": [{"scheme": "GTIN", "product_code": "05000456013482", "withdrawn": false,
   "batches": [{"id": "00001", "expiry": "261200", "recalled": false, "serials": ["0000000014", "0000000015"]}]}]}"""

// "Vị trí hiện tại của tôi": the phone's location fills the hidden lat/lon fields (CSP: no inline script).
(function () {
  var button = document.getElementById("locate");
  var said = document.getElementById("located");
  if (!button || !navigator.geolocation) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    said.textContent = "Đang lấy vị trí…";
    navigator.geolocation.getCurrentPosition(function (pos) {
      document.getElementById("id_lat").value = pos.coords.latitude.toFixed(6);
      document.getElementById("id_lon").value = pos.coords.longitude.toFixed(6);
      var pin = document.querySelector("input[name=where][value=pin]");
      if (pin) pin.checked = true;
      said.textContent = "Đã lấy vị trí (" + pos.coords.latitude.toFixed(4) + ", " + pos.coords.longitude.toFixed(4) + ").";
    }, function () {
      said.textContent = "Không lấy được vị trí: hãy nhập địa chỉ.";
    }, { enableHighAccuracy: true, timeout: 15000 });
  });
})();

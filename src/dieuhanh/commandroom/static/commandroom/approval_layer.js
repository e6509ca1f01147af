// The approval state as a layer of the room's map (issue 19): each unit below the one shown, coloured by
// its state for the data set and period of GET /api/v1/approvals/map (by default the first data set with
// approval and the latest period acted on). Registered with DieuhanhMap.addLayer (commandroom/vnmap.js);
// the layer then appears in the map's "Tô màu theo" choices. Nothing happens without the map module.
(function () {
  "use strict";
  if (!window.DieuhanhMap || typeof window.DieuhanhMap.addLayer !== "function") return;
  var LEGEND = [
    { value: "open", colour: "#c9c9c9", label: "Chưa phê duyệt" },
    { value: "approved", colour: "#7fb77e", label: "Đã phê duyệt" },
    { value: "accepted", colour: "#1d6b2f", label: "Cấp trên đã chấp nhận" },
    { value: "approved_above", colour: "#0b3d91", label: "Cấp trên đã phê duyệt" },
  ];
  window.DieuhanhMap.addLayer({
    code: "approval",
    label: "Trạng thái phê duyệt",
    legend: LEGEND,
    load: function (unitRef) {
      var url = "/api/v1/approvals/map?unit=" + encodeURIComponent(unitRef);
      return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { values: {} }; })
        .then(function (body) { return body.values || {}; })
        .catch(function () { return {}; });
    },
  });
})();

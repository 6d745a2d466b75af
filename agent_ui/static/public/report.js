// 网上反映: the citizen's report goes to the operators' queue; the answer says by when it is handled
// and how the ticket number and query code will reach them.
"use strict";
(() => {
  const {post, notice, hold} = window.citizen;
  const $ = (id) => document.getElementById(id);
  const form = $("report");

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {text: form.text.value.trim(), place: form.place.value.trim(), contact: form.contact.value.trim(),
                  name: form.name.value.trim(), confidential: form.confidential.checked};
    if (body.text.length < 5) { notice($("notice"), "请填写反映内容（至少 5 个字）", true); form.text.focus(); return; }
    if (body.contact.length < 5) { notice($("notice"), "请填写联系电话", true); form.contact.focus(); return; }
    $("send").disabled = true;
    try {
      const got = await post("/api/public/submissions", body);
      $("done-text").textContent = got.message;
      $("form-card").hidden = true;
      $("done").hidden = false;
      form.reset();
      notice($("notice"), "");
      $("send").disabled = false;
    } catch (e) {
      notice($("notice"), e.message, true);
      if (e.status === 429 && e.wait) hold($("send"), e.wait, "提交"); else $("send").disabled = false;
    }
  });

  $("again").addEventListener("click", () => {
    $("done").hidden = true;
    $("form-card").hidden = false;
    form.text.focus();
  });
})();

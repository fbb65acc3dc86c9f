// Live updates: the server streams the page's <main> as it changes.
(function(){var m=document.querySelector('main');if(!m||!window.EventSource)return;
var s=new EventSource('/live?page='+encodeURIComponent(location.pathname));
s.onmessage=function(e){m.innerHTML=e.data;};})();

// The Interactive API: GraphiQL against this server's own endpoint (same origin, so the UI's
// session cookie, if any, authenticates it; the headers tab can send `Authorization` instead).
(function () {
  var fetcher = GraphiQL.createFetcher({ url: "/graphql" });
  var plugins = [];
  if (window.GraphiQLPluginExplorer) plugins.push(GraphiQLPluginExplorer.explorerPlugin());
  var element = React.createElement(GraphiQL, {
    fetcher: fetcher,
    plugins: plugins,
    defaultQuery: "# Ctrl-Enter runs the query; the Docs button browses the schema.\n{ hello }\n",
    shouldPersistHeaders: false,
  });
  ReactDOM.render(element, document.getElementById("graphiql"));
})();

// The Interactive API: GraphiQL against this server's own endpoint (same origin, so the UI's
// session cookie, if any, authenticates it; the headers tab can send `Authorization` instead).
// The explorer plugin is a React hook, so GraphiQL is rendered by a small component that owns
// the query text both edit.
(function () {
  var fetcher = GraphiQL.createFetcher({ url: "/graphql" });
  var h = React.createElement;
  var initial = "# Ctrl-Enter runs the query; the Docs button browses the schema.\n{ hello }\n";

  function App() {
    var state = React.useState(initial);
    var query = state[0], setQuery = state[1];
    var plugins = [];
    if (window.GraphiQLPluginExplorer && GraphiQLPluginExplorer.useExplorerPlugin) {
      plugins.push(GraphiQLPluginExplorer.useExplorerPlugin({ query: query, onEdit: setQuery }));
    }
    return h(GraphiQL, { fetcher: fetcher, query: query, onEditQuery: setQuery, plugins: plugins,
                         shouldPersistHeaders: false });
  }

  ReactDOM.render(h(App), document.getElementById("graphiql"));
})();

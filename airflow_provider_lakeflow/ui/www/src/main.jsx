// The plugin's component: Airflow renders it with dagId/runId/taskId/mapIndex on a task instance's "Lakeflow" tab
// and without them on the "Lakeflow pipelines" page in the navigation.
import { PipelinesPage } from "./PipelinesPage.jsx";
import { TaskInstanceView } from "./TaskInstanceView.jsx";
import { ThemeRoot } from "./theme.jsx";

export default function LakeflowPlugin({ dagId, runId, taskId, mapIndex }) {
  const onTask = Boolean(dagId && runId && taskId);
  return (
    <ThemeRoot>
      {onTask ? (
        <TaskInstanceView dagId={dagId} runId={runId} taskId={taskId} mapIndex={mapIndex ?? "-1"} />
      ) : (
        <PipelinesPage />
      )}
    </ThemeRoot>
  );
}
